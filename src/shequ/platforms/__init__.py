"""The pages of each level of the three-level platform (三级平台) and the residents' pages.

- ``brain``: 社区大脑, the big screen of the subdistrict (街道) that commands and decides;
- ``grid``: 网格中台, where cases are dispatched and handled, patrols reported, data searched;
- ``committee``: 居委微平台, mobile-first, where a committee finds and answers first;
- ``resident``: 居民端, mobile web, where residents report and follow up.

Each package declares ``NAV`` (its menu entries) and ``TEMPLATES`` (its template folder) in
``__init__.py`` and its pages in ``routes.py`` (``router``); queries live in ``service.py``.
The kernel's web app includes them; the platforms use the kernel, never a scenario.
"""

from __future__ import annotations

from shequ.platforms import brain, committee, grid, resident

PLATFORMS = (brain, grid, committee, resident)
