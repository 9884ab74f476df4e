"""The core domain: organizations, memberships, project types, projects, encryption, audit."""
