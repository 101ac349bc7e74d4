"""Stage 3: returns panel, covariance, regime, max diversification and the barbell."""
