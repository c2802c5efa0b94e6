"""dlib's public-domain models read from their ``.dat`` files and ported to torch (no dlib at run time).

``serialize``: dlib's serialization primitives (:class:`~edgeface.export.dlib.serialize.DlibReader`);
``resnet_dat``: the face-recognition ResNet's ``.dat`` file -> layers and weights; ``resnet``: the network as a
torch module (:func:`~edgeface.export.dlib.resnet.load_dlib_resnet`); ``shape_predictor_dat``: the 5-point landmark
model's ``.dat`` -> the ``.npz`` the torch-free core runs (:mod:`edgeface.landmarks.shape5`); ``pretrained``: the
ResNet as an edgeface model source (preprocessing, alignment, licence, provenance).
"""
