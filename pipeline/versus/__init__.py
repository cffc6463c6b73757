"""Model against model (``pairwise``) and sweep against sweep (``diff``).

Read finished run folders or predictions files; write ``<output_dir>/pairwise/<a>_vs_<b>/``
and ``<output_dir>/diff/``.
"""
