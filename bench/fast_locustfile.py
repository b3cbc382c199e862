# Benchmark workload for bench/loadtest.sh: as fast as possible, no think time.
from locust import FastHttpUser, task


class Bench(FastHttpUser):
    @task
    def index(self):
        self.client.get("/")
