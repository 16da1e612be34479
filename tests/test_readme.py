from pathlib import Path

from ignition.catalog import load_catalog
from ignition.cli.catalog import markdown_table


def test_readme_catalog_table_matches_the_data_file() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    table = markdown_table(list(load_catalog().values()))
    assert table in readme, "regenerate with: ignition catalog --markdown"
