"""The model.yaml contract: schema validation, defaults, and the normalised model record baked into images."""
