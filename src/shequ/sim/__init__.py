"""The synthetic Jiangchuan Road subdistrict: a deterministic generator of realistic demo data.

``shequ seed --scale small|full [--seed N]`` runs :func:`shequ.sim.seed.seed`; the pieces are
``geo`` (layout in metres, converted to WGS84), ``addresses`` (Shanghai road/弄/号/室
numbering), ``names`` (people, committees, compounds, organisations), ``identity`` (ID
numbers, phones, credit codes), ``population`` (households and people), ``catalog``
(situations, industries, facilities) and ``bench`` (timing the seed).
"""
