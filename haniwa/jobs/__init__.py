"""One engine for long work (ingestion today; customization, evaluation, batch inference and model
import next): ``base`` holds the job, its states and the Runner seam, ``engine`` the rows and the runs."""
