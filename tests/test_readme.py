"""The README agrees with the code: its spec examples load and count exactly, its zoo table holds the analytic counts."""

from __future__ import annotations

import re
from pathlib import Path

import nasx
from nasx.net.verify import measure

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_multibranch_example_is_inception_resnet_v2s_block17():
    import yaml

    block = re.search(r"```yaml\n(# Inception-ResNet-v2's block17.*?)```", README.read_text(), re.S).group(1)
    spec = nasx.zoo.get("inception_resnet_v2")
    data = spec.to_dict()
    data["stages"][3] = yaml.safe_load(block)
    assert nasx.NetSpec.from_dict(data) == spec


def test_readme_spec_examples_load_and_count_exactly(tmp_path):
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)
    specs = [b for b in blocks if b.lstrip().startswith("# a small ResNeXt")]
    assert specs, "README lost its spec example"
    path = tmp_path / "example.yaml"
    path.write_text(specs[0])
    spec = nasx.load_spec(path)
    cx = nasx.complexity(spec).to_dict()
    assert cx == measure(spec)
    assert spec.describe() == "aggregated 2 stages d=(3,3) w=(256,512) C=8 gw=(4,8)"


def test_readme_space_example_is_the_shipped_resnet_space(tmp_path):
    from nasx.space import load_space
    from nasx.space.sampling import sample

    block = re.search(r"### An annotated space file.*?```yaml\n(.*?)```", README.read_text(), re.S).group(1)
    path = tmp_path / "resnet.yaml"
    path.write_text(block)
    ours, shipped = load_space(path), load_space("resnet")
    assert ours.stages == shipped.stages and ours.ties == shipped.ties and ours.flops == shipped.flops
    run = sample(ours, 0, 5, flops=(20_000_000, 40_000_000))
    assert [s.spec.id for s in run] == [s.spec.id for s in sample(shipped, 0, 5, flops=(20_000_000, 40_000_000))]


def test_readme_zoo_table_holds_the_analytic_counts():
    rows = re.findall(r"^\| `(\w+)`[^|]*\| ([\d,]+) \|[^|]*\| ([\d,]+) \|$", README.read_text(), re.M)
    assert len(rows) >= 18 and "inception_resnet_v1" in {name for name, _, _ in rows}
    for name, params, flops in rows:
        cx = nasx.complexity(name)
        assert (cx.params, cx.flops) == (int(params.replace(",", "")), int(flops.replace(",", ""))), name
