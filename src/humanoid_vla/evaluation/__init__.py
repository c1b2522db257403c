"""
Evaluation of trained policies that needs no simulator: action errors on recorded episodes.

Task success is measured by running policies (``humanoid_vla.sim``), never computed here.
"""

from humanoid_vla.evaluation.offline import evaluate_offline, OfflineReport

__all__ = ['evaluate_offline', 'OfflineReport']
