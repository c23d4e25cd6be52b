"""Evaluation: ROC curves, efficiencies, the TrackML score, plots and the HTML report."""
