"""One module per provider: `call_<name>(prompt, model, settings) -> Measurement` and its `PRICING`."""
