//! `catdog settings`: every environment variable the binaries read, made
//! from their settings structs (each variable's name, default, meaning and
//! whether it is a secret are declared once, as a clap argument).

use catdog::config::{self, Binary, Setting};
use catdog::local::LocalSettings;
use clap::CommandFactory as _;

/// Every setting, with the binaries that read it.
pub fn list() -> Vec<Setting> {
    config::settings(&[
        (
            Binary::ListImages,
            vec![config::command_of::<list_images::Settings>("list-images")],
        ),
        (
            Binary::IngestTrigger,
            vec![config::command_of::<ingest_trigger::Settings>(
                "ingest-trigger",
            )],
        ),
        (
            Binary::ClassifyImage,
            vec![config::command_of::<classify_image::Settings>(
                "classify-image",
            )],
        ),
        (
            Binary::Catdog,
            // What every command reads, then the commands' own flags
            // (`catdog serve --host`, …) that have a variable too.
            vec![
                config::command_of::<LocalSettings>("catdog"),
                crate::Cli::command(),
            ],
        ),
    ])
}

/// README.md's table of settings.
pub fn markdown() -> String {
    config::settings_markdown(&list())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_lists_every_setting_as_the_code_does() {
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(&markdown()),
            "README.md's settings table is out of date: put `catdog settings` between its settings markers"
        );
    }

    #[test]
    fn every_binary_declares_each_setting_once() {
        // clap's own checks (two arguments with one name, a default its
        // parser refuses, …) run when a command is built: here, not at a
        // function's start-up.
        let commands = [
            config::command_of::<list_images::Settings>("list-images"),
            config::command_of::<ingest_trigger::Settings>("ingest-trigger"),
            config::command_of::<classify_image::Settings>("classify-image"),
            config::command_of::<LocalSettings>("catdog"),
        ];
        for command in &commands {
            command.clone().debug_assert();
        }
        // A variable two binaries read comes from one group, so it is
        // declared alike everywhere (the table shows the first declaration).
        let mut seen: Vec<(String, Option<String>, bool, String)> = Vec::new();
        for command in &commands {
            for arg in command.get_arguments() {
                let Some(env) = arg.get_env() else { continue };
                let declared = (
                    env.to_string_lossy().into_owned(),
                    arg.get_default_values()
                        .first()
                        .map(|d| d.to_string_lossy().into_owned()),
                    arg.is_hide_env_values_set(),
                    arg.get_help().map(ToString::to_string).unwrap_or_default(),
                );
                match seen.iter().find(|s| s.0 == declared.0) {
                    Some(earlier) => assert_eq!(*earlier, declared, "declared twice, differently"),
                    None => seen.push(declared),
                }
            }
        }
    }

    #[test]
    fn every_setting_is_read_by_someone_and_means_something() {
        let list = list();
        assert!(list.len() >= 30, "{list:?}");
        for setting in &list {
            assert!(!setting.read_by.is_empty(), "{setting:?}");
            assert!(
                !setting.meaning.is_empty(),
                "{}: no help text",
                setting.name
            );
        }
    }

    #[test]
    fn the_secrets_are_the_ones_that_hold_passwords_and_keys() {
        let mut secrets: Vec<String> = list()
            .into_iter()
            .filter(|s| s.secret)
            .map(|s| s.name)
            .collect();
        secrets.sort();
        assert_eq!(
            secrets,
            ["CATDOG_ADMIN_TOKEN", "DATABASE_URL", "THECATAPI_KEY"]
        );
    }

    #[test]
    fn a_function_reads_only_its_own_capabilities() {
        let read_by = |name: &str| {
            list()
                .into_iter()
                .find(|s| s.name == name)
                .map(|s| s.read_by)
                .unwrap_or_default()
        };
        assert_eq!(read_by("PUBSUB_TOPIC"), [Binary::IngestTrigger]);
        assert_eq!(
            read_by("MODEL_DIR"),
            [Binary::ClassifyImage, Binary::Catdog]
        );
        assert_eq!(
            read_by("REQUIRE_OIDC"),
            [Binary::IngestTrigger, Binary::ClassifyImage]
        );
    }
}
