"""Drawing: DOT text built by pure functions (:mod:`~fusionlab.render.dot`), the one place
that runs Graphviz (:mod:`~fusionlab.render.graphviz`), and the documentation figures
(:mod:`~fusionlab.render.figures`).
"""
