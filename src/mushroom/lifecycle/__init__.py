"""What happens to a trained model: MLflow tracking, replay of logged traffic, promotion,
the champion alias and which model serves. Imports core, data and model."""
