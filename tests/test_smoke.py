from orchestrator.spec import load_spec


def test_quickstart_spec_is_valid():
    spec = load_spec("search_spaces/digits_mlp_asha.yaml")
    assert spec.name == "digits-mlp-asha"
    assert spec.trial_count == 24
