from renkei.datadict import DATA_DICTIONARY_PATH, render
from renkei.domain.model import CANONICAL_MODELS


def test_data_dictionary_is_up_to_date():
    assert DATA_DICTIONARY_PATH.read_text(encoding="utf-8") == render(), "run `renkei docs` to regenerate"


def test_every_field_is_documented_with_an_owner():
    text = render()
    for model in CANONICAL_MODELS:
        assert f"## {model.__name__}" in text
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            assert f"| `{name}` |" in text
