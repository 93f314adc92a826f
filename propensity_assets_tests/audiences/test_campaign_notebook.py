"""notebooks/campaign.ipynb, executed end to end (nbclient, a real kernel) against the tiny
lake of conftest.py: its parameters cell is rewritten to point at that lake's catalogue."""

import nbformat
from nbclient import NotebookClient

from propensity_assets_tests.audiences.conftest import AS_OF
from propensity_assets_tests.cli_helpers import REPO

NOTEBOOK = REPO / "notebooks" / "campaign.ipynb"


def test_the_campaign_notebook_runs_on_a_small_lake(tiny_lake, tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    [parameters] = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    parameters.source = f'CATALOG = "{tiny_lake.root / "lake.duckdb"}"\nAS_OF = "{AS_OF}"\nGROUP = "beef"'
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    # A print may arrive in several stream messages: join them before splitting lines.
    printed = "".join(out.text for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs
                      if out.output_type == "stream").splitlines()
    # beef by score: households 1, 2, 3 (the audience), 4, 5, 6; buyers 1, 3 and 4.
    assert printed == [
        f"6 households in the profile as of {AS_OF}",
        "3 households: top 3 by score",
        "the audience (3 households, 50% of 6) reaches 67% of the 3 beef buyers",
    ]
    figures = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs
               if "image/png" in out.get("data", {})]
    assert len(figures) == 2  # the gains curve and the LTV deciles
    errors = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs if out.output_type == "error"]
    assert errors == []
