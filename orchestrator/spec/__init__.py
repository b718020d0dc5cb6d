"""YAML -> a validated, frozen sweep spec: the model, the trainable's settings, search
distributions, the scheduler/searcher option models, dotted keys and error messages.
Importing it needs neither Ray nor torch."""

from orchestrator.spec.model import SweepSpec, load_spec, spec_from_mapping

__all__ = ["SweepSpec", "load_spec", "spec_from_mapping"]
