"""Backends of the job kinds: the numpy engine is used directly; ``torch_net`` mirrors the
engine's MLP in torch (imported only by job code running on torch)."""
