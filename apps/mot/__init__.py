"""Multi-object tracking with an instance-to-track contrastive appearance embedding (Semi-TCL).

Modules: ``data`` (MOTChallenge files, sequences, videos), ``synth`` (seeded sequence generator),
``tracker`` (online Kalman + IoU + appearance, ByteTrack-style stages), ``model`` (crop embedding
network), ``losses`` (composed from ``shared.losses``), ``train`` (instance-to-track and
instance-to-instance training on the shared engine), ``infer`` (tracking sequences/videos),
``evaluate`` (motmetrics + TrackEval), ``cli`` (``cvsuite mot ...``).
"""
