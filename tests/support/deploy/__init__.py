"""Static checks of the deployment files, since no Docker engine or cluster runs here.

Each check is a small function that takes parsed files and returns a list of
problems (empty when fine), so the same functions run on the real files and on
deliberately broken copies: a check that cannot fail proves nothing. The tests
are tests/unit/test_deploy_compose.py, test_deploy_k8s.py and test_deploy_image.py.

What is checked: docker-compose.yml against the Compose Specification schema
(vendored by the check-jsonschema package), the Kubernetes manifests against
the Kubernetes 1.31 OpenAPI schemas (bundled by kubernetes-validate), the
ServiceMonitor (a CRD) by hand, every STREAMPROC_* variable and config file
against streamproc's own settings, image pinning, healthchecks, mounts, and the
Docker image's dependency pins against pyproject.toml. The Dockerfile is read
with dockerfile-parse and .dockerignore matched by the Docker SDK's own matcher.
"""
