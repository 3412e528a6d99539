"""The upload client behind ``tracklane upload``: talks to a tracklane API over HTTP only (the local
stack or a deployment), so it imports nothing of ``functions`` or ``local`` (an import-linter
contract holds it to that).

- ``api``: the API's routes, its error envelope as ``ApiError`` (with the stable ``code``);
- ``transfer``: the bytes, one signed PUT or parts in parallel, each part signed for its size;
- ``state``: what a rerun needs to resume (a small JSON file per upload in a cache directory);
- ``progress``: the Server-Sent Events of an upload's processing, until ready/failed/duplicate;
- ``single`` / ``album``: one file through ``POST /v1/uploads``, several into an album through the
  upload-session contract;
- ``context`` / ``results``: what one run's files share, and what became of each file;
- ``output``: progress bars, or one JSON object per file;
- ``command``: the options of ``tracklane upload`` and its exit code (docs/cli.md).
"""
