"""The studio: ``neural-style-serve``, one warm process that runs neural-style jobs one at a time, with an HTTP JSON
API, live progress as server-sent events and a web page (the ``serve`` extra: fastapi, uvicorn, python-multipart).

* :mod:`.settings`: the one door to the ``neural-style`` command (its flags, checks and run driver);
* :mod:`.store`: the job records and queue in SQLite; :mod:`.folders`: the data directory;
* :mod:`.runner`: the thread that runs the jobs; :mod:`.events`: their events for the streams;
* :mod:`.uploads`: upload limits and decoding; :mod:`.security`: host, token, origin and size checks;
* :mod:`.studio`: accepting and describing jobs; :mod:`.app` and :mod:`.routes`: the web application;
* :mod:`.command`: the ``neural-style-serve`` command.

Importing this package imports nothing else.
"""
