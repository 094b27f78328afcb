"""Reports over the decision log: `gearshift report`, as figures, text, JSON or one HTML page.

```python
from gearshift.reporting import build_report, iter_log, render_html

report = build_report(iter_log("gearshift-decisions.jsonl"))
print(report["cost"]["savings_usd"], report["escalation"]["rate"])
```
"""

from ._aggregate import CAUSES, build_report
from ._html import render_html
from ._reader import iter_log

__all__ = ["CAUSES", "build_report", "iter_log", "render_html"]
