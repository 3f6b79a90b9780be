"""``quag serve``: a web page and a JSON API for asking questions of a video (FastAPI, see docs/serve.md).

* :mod:`quag.serve.service`: the model side, without a web framework: stored videos keyed by content, two model
  lanes (:mod:`quag.serve.lanes`: requests queue), encoding progress, bounded memory;
* :mod:`quag.serve.uploads`: what is accepted as a video (the PyAV probe) and display names;
* :mod:`quag.serve.app`: the FastAPI app (the page, its static files, ``/api``);
* :mod:`quag.serve.server`: load a checkpoint once and run the app with uvicorn.

FastAPI, uvicorn and python-multipart are the ``serve`` extra (``pip install quag[serve]``); they are imported only
by :mod:`quag.serve.app` and :mod:`quag.serve.server`.
"""
