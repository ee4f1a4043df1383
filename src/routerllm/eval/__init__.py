"""Evaluation: routing metrics on outcome data, classifier metrics, quality/cost plots.

``routing_metrics`` and ``classifier_metrics`` need numpy only; ``plots`` imports
matplotlib when it is called.
"""
