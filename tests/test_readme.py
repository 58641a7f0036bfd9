"""The README is a front page that agrees with the code (set-up, the main job, every command, links that resolve), and
the docs' examples load and count exactly: the spec examples and the zoo table (docs/zoo.md), the annotated space
file (docs/spaces.md)."""

from __future__ import annotations

import re
from pathlib import Path

import nasx
from nasx.net.verify import measure

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ZOO = ROOT / "docs" / "zoo.md"  # the spec format and the zoo table, moved out of the README
SPACES = ROOT / "docs" / "spaces.md"


def test_readme_is_a_front_page_naming_the_set_up_the_main_job_and_every_command():
    import typer

    from nasx.cli.app import app

    text = README.read_text()
    assert len(text.splitlines()) <= 200
    setup = re.search(r"## Set-up\n\n```bash\n(.*?)```", text, re.S).group(1)
    assert setup.splitlines() == ['pip install -e ".[dev]"', "pytest"]
    assert "```bash\nnasx explore --space resnext\n```" in text
    commands = set(typer.main.get_command(app).commands)
    tabled = set(re.findall(r"^\| `nasx (\w+)", text, re.M))
    assert len(commands) >= 15 and tabled == commands


def test_readme_and_docs_links_resolve():
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for link in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if link.startswith(("http:", "https:", "#")):
                continue
            target = (page.parent / link.split("#")[0]).resolve()
            assert target.exists(), f"{page.name}: {link}"
            anchor = link.partition("#")[2]
            if anchor and target.suffix == ".md":
                slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                         for h in re.findall(r"^#+ (.*)$", target.read_text(), re.M)}
                assert anchor in slugs, f"{page.name}: {link}"


def test_docs_multibranch_example_is_inception_resnet_v2s_block17():
    import yaml

    block = re.search(r"```yaml\n(# Inception-ResNet-v2's block17.*?)```", ZOO.read_text(), re.S).group(1)
    spec = nasx.zoo.get("inception_resnet_v2")
    data = spec.to_dict()
    data["stages"][3] = yaml.safe_load(block)
    assert nasx.NetSpec.from_dict(data) == spec


def test_docs_spec_examples_load_and_count_exactly(tmp_path):
    blocks = re.findall(r"```yaml\n(.*?)```", ZOO.read_text(), re.S)
    specs = [b for b in blocks if b.lstrip().startswith("# a small ResNeXt")]
    assert specs, "docs/zoo.md lost its spec example"
    path = tmp_path / "example.yaml"
    path.write_text(specs[0])
    spec = nasx.load_spec(path)
    cx = nasx.complexity(spec).to_dict()
    assert cx == measure(spec)
    assert spec.describe() == "aggregated 2 stages d=(3,3) w=(256,512) C=8 gw=(4,8)"


def test_docs_space_example_is_the_shipped_resnet_space(tmp_path):
    from nasx.space import load_space
    from nasx.space.sampling import sample

    block = re.search(r"## An annotated example.*?```yaml\n(.*?)```", SPACES.read_text(), re.S).group(1)
    path = tmp_path / "resnet.yaml"
    path.write_text(block)
    ours, shipped = load_space(path), load_space("resnet")
    assert ours.stages == shipped.stages and ours.ties == shipped.ties and ours.flops == shipped.flops
    run = sample(ours, 0, 5, flops=(20_000_000, 40_000_000))
    assert [s.spec.id for s in run] == [s.spec.id for s in sample(shipped, 0, 5, flops=(20_000_000, 40_000_000))]


def test_docs_zoo_table_holds_the_analytic_counts():
    rows = re.findall(r"^\| `(\w+)`[^|]*\| ([\d,]+) \|[^|]*\| ([\d,]+) \|$", ZOO.read_text(), re.M)
    assert len(rows) >= 18 and "inception_resnet_v1" in {name for name, _, _ in rows}
    for name, params, flops in rows:
        cx = nasx.complexity(name)
        assert (cx.params, cx.flops) == (int(params.replace(",", "")), int(flops.replace(",", ""))), name
