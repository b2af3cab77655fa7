"""vitrep's model converter: PyTorch models → per-block ONNX graphs (forward and hand-written
VJP), safetensors weight sets and the manifest the TypeScript runtime loads.

Modules: layers (shared graph ops), tokens (what ViT and attentionless models share), vit,
mixer + mixer_ref (MLP-Mixer, FF-only ViT), resnet, export (ONNX, external data), weights
(checkpoints, safetensors), manifest (the contract), verify (checks against PyTorch),
family (the Family object each family module registers: its model names, command-line
setup, --list lines and the manifest's runtime fields), registry (the registered families and
model names), cli (the command line: `python3 tools/convert.py` or `python3 -m vitrep_convert`
from tools/); standin (a script apart: a stand-in trained checkpoint
in torchvision's format and PyTorch's logits, for tests/trained_weights_test.ts)."""
