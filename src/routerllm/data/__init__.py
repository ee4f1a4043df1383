"""Datasets (code only, no data): labelled prompts for classifiers, routing outcomes for routers."""
