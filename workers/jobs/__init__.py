"""The job layer over taskiq: delayed and recurring jobs, cancellation, child jobs and retention."""
