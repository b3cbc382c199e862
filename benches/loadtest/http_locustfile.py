# Benchmark workload for benches/loadtest/loadtest.sh: as fast as possible, no think time.
from locust import HttpUser, task


class Bench(HttpUser):
    @task
    def index(self):
        self.client.get("/")
