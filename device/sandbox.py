"""Can the service see what it needs? The unit's sandbox against the paths of this installation.

A unit that names a Python it cannot see fails at every start (status 203/EXEC or an ImportError in the
journal, restarted in a loop), so ``install-service`` checks before it writes anything:

* what must be **readable**: the ExecStart executable, its interpreter (shebang) and that interpreter's real
  file, the virtual environment, the base Python's prefix (its standard library), the ``edgeface`` package
  the interpreter imports, and the config's files (config, bundle, gallery, detector model);
* what must be **writable**: the folders of the audit database and its face crops (gate), of the gallery,
  accounts, admin log and kept photos (admin page);

against the unit's ``PrivateTmp=`` (hides /tmp and /var/tmp), ``ProtectHome=`` (true/tmpfs hide /home,
/root and /run/user; read-only makes them read-only) and ``ProtectSystem=`` (strict: everything read-only
except ``ReadWritePaths=`` and the unit's State/Logs/Runtime/Cache directories). Symbolic links are
followed: a venv's ``bin/python`` is checked and so is the file it points to.

Each :class:`Problem` says which setting hides the path and the drop-in line that would lift it;
:func:`dropin` collects those lines for ``install-service --relax-sandbox``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

TMP_DIRS = ("/tmp", "/var/tmp")
HOME_DIRS = ("/home", "/root", "/run/user")
READ_ONLY = {"strict": ("/",), "full": ("/usr", "/boot", "/efi", "/etc"), "true": ("/usr", "/boot", "/efi"),
             "yes": ("/usr", "/boot", "/efi")}
_DIRECTORY_ROOTS = {"StateDirectory": "/var/lib", "LogsDirectory": "/var/log", "RuntimeDirectory": "/run",
                    "CacheDirectory": "/var/cache"}
FIX = ("install edgeface where a service can see it, e.g. `sudo /usr/bin/python3 -m venv --system-site-packages "
       "/opt/edgeface/venv && sudo /opt/edgeface/venv/bin/pip install 'edgeface-VERSION-py3-none-any.whl[device]'` "
       "(the wheel scripts/build-wheel.sh builds; docs/deployment.md, \"Install on the door from a wheel\"), then run "
       "`sudo /opt/edgeface/venv/bin/edgeface install-service`; or let install-service lift the setting in a "
       "drop-in with --relax-sandbox")
PROBE = ("import importlib.util, json, os, sys; s = importlib.util.find_spec('edgeface'); "
         "print(json.dumps({'executable': sys.executable, 'prefix': sys.prefix, 'base_prefix': sys.base_prefix, "
         "'package': os.path.dirname(s.origin) if s and s.origin else None}))")


def under(path: str, roots) -> bool:
    p = PurePosixPath(path)
    return any(p == PurePosixPath(r) or PurePosixPath(r) in p.parents for r in roots)


@dataclass(frozen=True)
class Sandbox:
    private_tmp: bool
    protect_home: str
    protect_system: str
    writable: tuple[str, ...]

    @classmethod
    def of_unit(cls, text: str) -> "Sandbox":
        """The settings of a unit file's [Service] section (a later assignment wins, as in systemd)."""
        keys: dict[str, list[str]] = {}
        section = ""
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[Service]" and "=" in line and not line.startswith(("#", ";")):
                key, _, value = line.partition("=")
                keys.setdefault(key.strip(), []).append(value.strip())
        last = {k: v[-1] for k, v in keys.items()}
        writable = [p.lstrip("-+") for v in keys.get("ReadWritePaths", []) for p in v.split()]
        for key, root in _DIRECTORY_ROOTS.items():
            writable += [f"{root}/{d}" for v in keys.get(key, []) for d in v.split()]
        return cls(private_tmp=last.get("PrivateTmp", "false") in ("true", "yes", "1", "on"),
                   protect_home=last.get("ProtectHome", "false"), protect_system=last.get("ProtectSystem", "false"),
                   writable=tuple(writable))


@dataclass(frozen=True)
class Need:
    path: str
    what: str
    write: bool = False


@dataclass(frozen=True)
class Problem:
    need: Need
    path: str  # the path as checked (the need's, or where its symbolic links lead)
    setting: str
    adjust: tuple[str, ...]  # drop-in lines that lift it; () when no setting can (a missing file)

    def message(self) -> str:
        via = "" if self.path == self.need.path else f" (really {self.path})"
        return f"{self.need.what} {self.need.path}{via}: {self.setting}"


def check(needs, sandbox: Sandbox) -> list[Problem]:
    out: list[Problem] = []
    for need in needs:
        for path in dict.fromkeys((need.path, os.path.realpath(need.path))):
            problem = _check_one(need, path, sandbox)
            if problem is not None and problem.setting not in {p.setting for p in out if p.need == need}:
                out.append(problem)
    return out


def _check_one(need: Need, path: str, sb: Sandbox) -> Problem | None:
    rw = (f"ReadWritePaths={path}",) if need.write else ()
    if sb.private_tmp and under(path, TMP_DIRS):
        return Problem(need, path, "PrivateTmp=true hides /tmp and /var/tmp", ("PrivateTmp=false", *rw))
    if under(path, HOME_DIRS) and sb.protect_home in ("true", "yes", "tmpfs"):
        return Problem(need, path, f"ProtectHome={sb.protect_home} hides /home, /root and /run/user",
                       ("ProtectHome=read-only", *rw))
    if need.write and under(path, HOME_DIRS) and sb.protect_home == "read-only" and not under(path, sb.writable):
        return Problem(need, path, "ProtectHome=read-only makes /home, /root and /run/user read-only", rw)
    if need.write and under(path, READ_ONLY.get(sb.protect_system, ())) and not under(path, sb.writable):
        return Problem(need, path, f"ProtectSystem={sb.protect_system} makes it read-only (not in ReadWritePaths=)",
                       rw)
    return None


def dropin(problems: list[Problem]) -> str:
    lines = list(dict.fromkeys(line for p in problems for line in p.adjust))
    return ("# written by edgeface install-service --relax-sandbox: the sandbox lifted where this installation\n"
            "# needs it (see docs/deployment.md); a venv under /opt needs none of it\n[Service]\n"
            + "".join(line + "\n" for line in lines))


def interpreter_of(exec_cmd) -> str | None:
    """The Python that ExecStart runs: ``python -m ...`` itself, or the shebang of the script."""
    exe = exec_cmd[0]
    if len(exec_cmd) > 2 and exec_cmd[1] == "-m":
        return exe
    try:
        with open(exe, "rb") as f:
            first = f.readline(512).decode("utf-8", "replace").strip()
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    parts = first[2:].split()
    if parts and os.path.basename(parts[0]) == "env" and len(parts) > 1:
        return shutil.which(parts[-1])
    return parts[0] if parts else None


def probe(interpreter: str) -> dict | None:
    """Where ``interpreter`` really lives and which ``edgeface`` it imports (None: it cannot run or import)."""
    if os.path.realpath(interpreter) == os.path.realpath(sys.executable):
        spec = importlib.util.find_spec("edgeface")
        return {"executable": sys.executable, "prefix": sys.prefix, "base_prefix": sys.base_prefix,
                "package": os.path.dirname(spec.origin) if spec and spec.origin else None}
    try:
        proc = subprocess.run([interpreter, "-I", "-c", PROBE], capture_output=True, text=True, timeout=60)
        return json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def installation_needs(exec_cmd) -> tuple[list[Need], list[str]]:
    """What ExecStart needs to read, and the problems no setting can lift (missing file, no edgeface)."""
    exe = exec_cmd[0]
    if not os.path.isfile(exe):
        return [], [f"ExecStart's executable {exe} does not exist"]
    needs = [Need(exe, "the ExecStart executable")]
    interpreter = interpreter_of(exec_cmd)
    if interpreter is None:
        return needs, []
    needs.append(Need(interpreter, "its Python"))
    facts = probe(interpreter)
    if facts is None or not facts.get("package"):
        return needs, [f"ExecStart's Python {interpreter} cannot import edgeface"]
    needs += [Need(facts["prefix"], "its virtual environment"), Need(facts["base_prefix"], "the base Python"),
              Need(facts["package"], "the edgeface package")]
    return needs, []


def config_needs(cfg, admin: bool = False) -> list[Need]:
    """The config's files: read by the gate, the writable folders of the gate (audit) or the admin page."""
    m, a = cfg.model, cfg.audit
    needs = [Need(str(m.bundle), "the model bundle"), Need(str(m.gallery), "the gallery")]
    if cfg.detector.model_path is not None:
        needs.append(Need(str(cfg.detector.model_path), "the detector model"))
    if not admin:
        needs.append(Need(str(Path(a.path).parent), "the audit database's folder", write=True))
        if a.save_faces and a.faces_dir is not None:
            needs.append(Need(str(a.faces_dir), "the face crops' folder", write=True))
        return needs
    ad = cfg.admin
    needs += [Need(str(Path(a.path)), "the audit database"),
              Need(str(Path(m.gallery).parent), "the gallery's folder", write=True),
              Need(str(Path(ad.accounts).parent), "the admin accounts' folder", write=True),
              Need(str(Path(ad.log).parent), "the admin log's folder", write=True)]
    if ad.save_faces and ad.photos_dir is not None:
        needs.append(Need(str(ad.photos_dir), "the kept photos' folder", write=True))
    return needs
