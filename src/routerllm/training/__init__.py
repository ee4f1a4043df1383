"""Training code: losses and training loops. The only place optimisers live.

Inference code (routers, encoders, the server) never imports this package;
a router's ``fit`` imports the module it needs lazily. ``losses`` and
``trainer`` (the classifier routers', torch; its checkpoints in ``checkpoint``) and
``gating`` (the mixture-of-experts router's gating network, numpy) are imported one
by one, so that training the gating network needs no torch.
"""
