"""Model customization: data, hyperparameters, LoRA training on the job engine, custom-model serving."""
