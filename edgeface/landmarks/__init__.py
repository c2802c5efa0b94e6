"""Face landmarks beyond the detector's own: dlib's 5-point predictor (``shape5.py``) and the mapping from a
YuNet box to the box that predictor was trained on (``box.py``). numpy only, no torch, no dlib."""
