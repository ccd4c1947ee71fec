"""Numbers in YAML files read as a person means them, in the task file and the training preset alike."""
import pytest

from ft_pipeline.core.numbers import parse_number


@pytest.mark.parametrize("value, number", [
    ("2e-4", 0.0002), ("1e5", 100000.0), ("1_000", 1000), (" 3 ", 3), ("-1", -1), ("+7", 7), (0.5, 0.5), (8, 8),
    ("two", None), ("", None), (True, None), (None, None), ("nan", None), (float("inf"), None), ([1], None),
])
def test_parse_number(value, number):
    assert parse_number(value) == number and type(parse_number(value)) is type(number)


@pytest.mark.parametrize("line, target", [("target: 8e-1", 0.8), ("target: '0.75'", 0.75), ("target: 1", 1)])
def test_task_target_is_a_number(tmp_path, line, target):
    from ft_pipeline.core.task import TaskConfig

    path = tmp_path / "task.yaml"
    path.write_text(f"name: t\ntype: classification\n{line}\n")
    assert TaskConfig.from_yaml(path).target == target


@pytest.mark.parametrize("line, says", [("target: yes", "must be a number, not true/false"),
                                        ("target: high", "'high' is not a number")])
def test_task_target_that_is_not_a_number_names_file_and_field(tmp_path, line, says):
    from ft_pipeline.core.task import TaskConfig, TaskError

    path = tmp_path / "task.yaml"
    path.write_text(f"name: t\ntype: classification\n{line}\n")
    with pytest.raises(TaskError, match=rf"task\.yaml.*field target: {says}"):
        TaskConfig.from_yaml(path)
