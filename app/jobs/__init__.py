"""Batch reindex jobs, as a package:

- `state`: the job record, its stores (memory, Redis) and every state transition;
- `layout`: the folders a job reads (allowed roots, uploaded batches) and its own folder;
- `runner`: the pieces of a reindex (plan, chunks, commit);
- `backends`: where pieces run, behind one `JobBackend` protocol (a thread of the server,
  or RQ workers on Redis), and the `gmvit worker` loop.
"""

from app.jobs.backends import InProcessJobs, JobBackend, RQJobs, run_worker
from app.jobs.layout import FolderRefused, JobFolders, resolve_folder, save_upload, upload_path
from app.jobs.runner import ReindexTarget, demo_marker
from app.jobs.state import CANCELLED, FAILED, FINISHED, QUEUED, RUNNING, SUCCEEDED, Job

__all__ = [
    "CANCELLED",
    "FAILED",
    "FINISHED",
    "QUEUED",
    "RUNNING",
    "SUCCEEDED",
    "FolderRefused",
    "InProcessJobs",
    "Job",
    "JobBackend",
    "JobFolders",
    "RQJobs",
    "ReindexTarget",
    "demo_marker",
    "resolve_folder",
    "run_worker",
    "save_upload",
    "upload_path",
]
