"""Raw video -> features, and query embeddings (the ``extract`` extra: PyAV, faster-whisper, MiniLM, Pillow).

Modules, in pipeline order:

* :mod:`~quag.pipeline.video`: PyAV probing, the official 1-fps frame rule, 16 kHz mono audio, failure reasons;
* :mod:`~quag.pipeline.eva_clip` / :mod:`~quag.pipeline.weights`: EVA-CLIP-g/14 towers and their strict loading;
* :mod:`~quag.pipeline.visual`: frame preprocessing and the L2-normalised frame encoder;
* :mod:`~quag.pipeline.asr`: Whisper transcripts (faster-whisper, tiny.en by default);
* :mod:`~quag.pipeline.text`: all-MiniLM-L6-v2 sentence embeddings;
* :mod:`~quag.pipeline.extract`: :class:`FeatureExtractor` (one video, in memory or to files), ``require_visual``;
* :mod:`~quag.pipeline.corpus`: ``quag extract`` over a corpus (resume, shards, failures report, feature spec);
* :mod:`~quag.pipeline.clip_tokenizer` / :mod:`~quag.pipeline.queries`: ``quag encode-queries``.

Heavy dependencies are imported inside the functions that need them, so importing these modules is cheap.
"""
