"""The platform's identities: who each process is, and the CA that vouches for it.

A low layer with no knowledge of the platform above it: the local runtime issues the services'
certificates with it, the provisioner each cluster's, and the Maestro server reads callers'
identities from the certificates they present.
"""
