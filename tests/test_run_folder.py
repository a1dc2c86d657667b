"""The run folder has one owner: the names of its files are spelled in unet_flax/workdir.py only."""

import ast
import json
import os
import re

import pytest

from unet_flax import workdir
from unet_flax.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OWNER = os.path.join('unet_flax', 'workdir.py')
RUN_FOLDER_FILES = re.compile(r'config\.json|experiment\.json|provenance\.json|metrics\.jsonl|eval_[^\'"\s]*\.json')


def _docstrings(tree) -> set[int]:
  nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
  return {id(n.body[0].value) for n in nodes
          if n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}


def _literals_naming_run_files(path: str) -> list[str]:
  with open(path) as f:
    source = f.read()
  tree = ast.parse(source)
  docstrings = _docstrings(tree)
  found = []
  for node in ast.walk(tree):
    is_string = isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))
    if is_string and id(node) not in docstrings:  # docstrings may name the files: they are read, not run
      segment = ast.get_source_segment(source, node) or ''
      if RUN_FOLDER_FILES.search(segment):
        found.append(f'{os.path.relpath(path, REPO)}:{node.lineno}: {segment}')
  return found


def test_run_folder_file_names_are_spelled_in_workdir_py_only():
  found = []
  for package in ('unet_flax', 'experiments'):
    for folder, _, files in os.walk(os.path.join(REPO, package)):
      found += [hit for name in files if name.endswith('.py')
                for hit in _literals_naming_run_files(os.path.join(folder, name))]
  assert found, 'the check found nothing, not even in workdir.py'
  assert all(hit.startswith(OWNER + ':') for hit in found), [h for h in found if not h.startswith(OWNER + ':')]


def test_one_json_reader_missing_gives_the_default_and_corrupt_is_strict_or_a_warning(tmp_path, caplog):
  assert workdir.read_json(str(tmp_path / 'absent.json'), []) == []
  (tmp_path / 'good.json').write_text('{"a": 1}')
  assert workdir.read_json(str(tmp_path / 'good.json')) == {'a': 1}
  torn = tmp_path / 'torn.json'
  torn.write_text('{"a": ')
  with pytest.raises(UserError, match='torn.json is not valid JSON'):
    workdir.read_json(str(torn))
  assert workdir.read_json(str(torn), {}, strict=False) == {}
  assert 'torn.json is not valid JSON' in caplog.text


def test_an_older_recorded_config_loads_with_todays_defaults(tmp_path):
  """A config.json written before painting_order, model.kind, optimizer.beta1, loss.pos_weight and
  loss.focal_* existed loads with each at the default that reproduces how that run trained."""
  from configs import base
  from unet_flax import predict
  recorded = workdir.config_dict(base.get_config())
  del recorded['painting_order'], recorded['model']['kind'], recorded['optimizer']['beta1']
  for field in ('pos_weight', 'focal_gamma', 'focal_alpha'):
    del recorded['loss'][field]
  recorded['target'], recorded['model']['image_size'] = 'lips', 64
  with open(workdir.Workdir(tmp_path).config_file, 'w') as f:
    f.write(json.dumps(recorded))
  config = predict.load_config(str(tmp_path))
  assert tuple(config.painting_order) == () and config.model.kind == 'unet' and config.optimizer.beta1 == 0.9
  assert (config.loss.pos_weight, config.loss.focal_gamma, config.loss.focal_alpha) == (1.0, 2.0, 0.25)
  assert config.target == 'lips' and config.model.image_size == 64  # what the run recorded is kept


def test_a_workdir_is_path_like_so_every_function_that_takes_a_folder_takes_one(tmp_path):
  run = workdir.Workdir(tmp_path / 'run')
  assert workdir.Workdir(run) == run  # wrapping twice is harmless
  assert os.fspath(run) == str(run) == str(tmp_path / 'run')
  assert f'in {run}.' == f'in {tmp_path / "run"}.'  # messages name the folder, not the type
  assert os.path.join(run, 'x') == os.path.join(str(tmp_path / 'run'), 'x')
