"""Online serving of the champion: request models, predictor, logging and metrics."""
