"""Model definitions: the SSL ViT, the tokenizer, the DiT and the tokenizer losses."""
