"""Development tools: the loopback S3 server, the demo-data generator, the demo report.

Not part of what a production worker imports: the DAG and the tasks never import this package.
"""
