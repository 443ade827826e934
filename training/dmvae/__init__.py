"""DMVAE training pipeline: SSL encoder -> tokenizer -> reference -> distribution matching ->
generator -> eval -> ONNX export. Run `python -m dmvae --help` from training/."""
