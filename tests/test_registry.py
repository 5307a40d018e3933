import pytest
from pydantic import BaseModel

from rerankgraph.errors import InputError, UnknownMethodError
from rerankgraph.registry import MethodSpec, get_method, list_methods, register


def test_builtins_are_registered_with_aliases():
    names = [m.name for m in list_methods()]
    assert {"pointwise", "rubric"} <= set(names)
    assert get_method("yes_no").name == "pointwise"


def test_unknown_method_names_the_registered_ones():
    with pytest.raises(UnknownMethodError) as info:
        get_method("nope")
    assert "unknown method 'nope'" in str(info.value) and "pointwise" in str(info.value)


def test_duplicate_registration_raises():
    spec = get_method("pointwise")
    with pytest.raises(ValueError, match="already registered"):
        register(MethodSpec(name="pointwise", build_graph=spec.build_graph,
                            params=BaseModel, description="dup"))


def test_unknown_or_bad_parameters_raise_input_error():
    spec = get_method("pointwise")
    with pytest.raises(InputError, match="'window'.*known parameters: batch_size"):
        spec.make_params({"window": 3})
    with pytest.raises(InputError, match="batch_size"):
        spec.make_params({"batch_size": 0})
    assert spec.make_params({"batch_size": 4}).batch_size == 4
