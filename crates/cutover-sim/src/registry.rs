//! The task definition registry, and the versions a scenario marks as bad.

use std::collections::BTreeMap;
use std::time::Duration;

/// How a bad version misbehaves once its tasks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadVersion {
    /// Tasks run, but every health check fails.
    NeverHealthy,
    /// Health checks pass, then fail from this long after the task started running.
    FailsAfter(Duration),
    /// Tasks stop after running a while (see `SimConfig::crash_after`), and
    /// ECS starts replacements.
    CrashLoop,
}

/// Container name to image.
pub type Containers = BTreeMap<String, String>;

#[derive(Debug, Default)]
pub(crate) struct Registry {
    families: BTreeMap<String, BTreeMap<u32, Containers>>,
    bad_task_definitions: BTreeMap<String, BadVersion>,
    bad_images: BTreeMap<String, BadVersion>,
}

/// `family:revision` from either that form or a full task definition ARN.
pub(crate) fn parse(td: &str) -> Option<(String, u32)> {
    let td = td.trim();
    let family_rev = match td.split_once(":task-definition/") {
        Some((_, rest)) => rest,
        None if td.starts_with("arn:") => return None,
        None => td,
    };
    let (family, rev) = family_rev.rsplit_once(':')?;
    let rev = rev.parse::<u32>().ok().filter(|r| *r > 0)?;
    (!family.is_empty()).then(|| (family.to_string(), rev))
}

impl Registry {
    pub fn containers(&self, family: &str, rev: u32) -> Option<&Containers> {
        self.families.get(family).and_then(|f| f.get(&rev))
    }

    /// Registers exactly `family:rev` unless it exists; scenarios use it to
    /// start from a known revision.
    pub fn ensure(&mut self, family: &str, rev: u32, containers: Containers) {
        self.families
            .entry(family.to_string())
            .or_default()
            .entry(rev)
            .or_insert(containers);
    }

    /// Registers the next revision of `family`, or returns the newest
    /// identical one, as a deploy tool that avoids revision churn would.
    pub fn register(&mut self, family: &str, containers: Containers) -> u32 {
        let revisions = self.families.entry(family.to_string()).or_default();
        if let Some((rev, _)) = revisions.iter().rev().find(|(_, c)| **c == containers) {
            return *rev;
        }
        let next = revisions.keys().next_back().map_or(1, |r| r + 1);
        revisions.insert(next, containers);
        next
    }

    /// Resolves a named revision. A revision nobody registered is registered
    /// on first use (copying the family's newest containers, or running
    /// `container` alone), so scenarios can name `web:2` without setup.
    pub fn resolve(&mut self, td: &str, container: &str) -> Result<String, String> {
        let (family, rev) = parse(td)
            .ok_or_else(|| format!("{td:?} is not a task definition (family:revision or ARN)"))?;
        if self.containers(&family, rev).is_none() {
            let containers = self
                .families
                .get(&family)
                .and_then(|f| f.values().next_back().cloned())
                .unwrap_or_else(|| {
                    Containers::from([(
                        container.to_string(),
                        format!("registry.example/{family}:{rev}"),
                    )])
                });
            self.ensure(&family, rev, containers);
        }
        Ok(format!("{family}:{rev}"))
    }

    /// The task definition that runs `image` in `container`, based on `base`.
    pub fn with_image(
        &mut self,
        base: &str,
        container: &str,
        image: &str,
    ) -> Result<String, String> {
        let (family, rev) =
            parse(base).ok_or_else(|| format!("{base:?} is not a task definition"))?;
        let mut containers = self
            .containers(&family, rev)
            .cloned()
            .ok_or_else(|| format!("task definition {family}:{rev} not found"))?;
        match containers.get_mut(container) {
            Some(current) => *current = image.to_string(),
            None => {
                return Err(format!(
                    "container {container:?} is not in task definition {family}:{rev}"
                ));
            }
        }
        let rev = self.register(&family, containers);
        Ok(format!("{family}:{rev}"))
    }

    pub fn mark_task_definition(&mut self, td: &str, bad: BadVersion) {
        let key = parse(td).map_or_else(|| td.to_string(), |(f, r)| format!("{f}:{r}"));
        self.bad_task_definitions.insert(key, bad);
    }

    /// Forgets a mark on `td`: the version was fixed.
    pub fn unmark_task_definition(&mut self, td: &str) {
        let key = parse(td).map_or_else(|| td.to_string(), |(f, r)| format!("{f}:{r}"));
        self.bad_task_definitions.remove(&key);
    }

    pub fn mark_image(&mut self, image: &str, bad: BadVersion) {
        self.bad_images.insert(image.to_string(), bad);
    }

    /// How tasks of `td` (`family:revision`) misbehave, if they do. A mark on
    /// the task definition wins over marks on its images.
    pub fn badness(&self, td: &str) -> Option<BadVersion> {
        if let Some(bad) = self.bad_task_definitions.get(td) {
            return Some(*bad);
        }
        let (family, rev) = parse(td)?;
        self.containers(&family, rev)?
            .values()
            .find_map(|image| self.bad_images.get(image).copied())
    }
}
