"""Task sets of the agent benchmark (``bench/agents.py``).

* ``dev``: the tasks the agent loop, its prompts and its checks may be tuned on.
* ``heldout``: written separately, by someone who did not tune the loop; the loop is never tuned on it.
  Its figures are the ones the README reports as the agent's quality.
"""
