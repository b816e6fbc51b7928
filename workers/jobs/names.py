"""Fixed taskiq task names of the job layer, so any process finds them whatever module path it used."""

MAINTENANCE_TASK_NAME = "chartbot.jobs.maintenance"
STILL_WORKING_TASK_NAME = "chartbot.jobs.analysis_still_working"
WATCHDOG_TASK_NAME = "chartbot.jobs.analysis_watchdog"

MAINTENANCE_SCHEDULE_KEY = "maintenance"

# Tasks an operator may schedule with `chartbot jobs add-recurring`.
RECURRING_TASKS = (MAINTENANCE_TASK_NAME,)
