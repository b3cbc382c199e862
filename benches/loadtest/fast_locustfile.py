# Benchmark workload for benches/loadtest/loadtest.sh: as fast as possible, no think time.
from locust import FastHttpUser, task


class Bench(FastHttpUser):
    @task
    def index(self):
        self.client.get("/")
