//! Endpoints the `gitlab` crate lacks (listing generic packages, `HEAD` of a package
//! file) and the shapes of the package-registry answers the store reads.

use std::borrow::Cow;

use ::gitlab::api::common::NameOrId;
use ::gitlab::api::endpoint_prelude::{Endpoint, Method, Pageable, QueryParams};
use serde::Deserialize;

/// `GET /projects/:id/packages?package_type=generic&package_name=…[&package_version=…]`.
/// The crate's `Packages` endpoint has no `generic` package type.
pub(super) struct GenericPackages<'a> {
    pub(super) project: NameOrId<'a>,
    pub(super) name: &'a str,
    pub(super) version: Option<&'a str>,
}

impl Endpoint for GenericPackages<'_> {
    fn method(&self) -> Method {
        Method::GET
    }
    fn endpoint(&self) -> Cow<'static, str> {
        format!("projects/{}/packages", self.project).into()
    }
    fn parameters(&self) -> QueryParams<'_> {
        let mut params = QueryParams::default();
        params
            .push("package_type", "generic")
            .push("package_name", self.name)
            .push_opt("package_version", self.version);
        params
    }
}

impl Pageable for GenericPackages<'_> {}

/// `HEAD /projects/:id/packages/generic/:name/:version/:file`: whether a file exists,
/// without downloading it (the crate has only the `GET`).
pub(super) struct GenericFileHead<'a> {
    pub(super) project: NameOrId<'a>,
    pub(super) name: &'a str,
    pub(super) version: &'a str,
    pub(super) file: &'a str,
}

impl Endpoint for GenericFileHead<'_> {
    fn method(&self) -> Method {
        Method::HEAD
    }
    fn endpoint(&self) -> Cow<'static, str> {
        // names and versions are already restricted to URL-safe characters
        format!(
            "projects/{}/packages/generic/{}/{}/{}",
            self.project, self.name, self.version, self.file
        )
        .into()
    }
}

/// A package, as `GET /projects/:id/packages` lists it.
#[derive(Debug, Deserialize)]
pub(super) struct PackageInfo {
    pub(super) id: u64,
    pub(super) name: String,
    #[serde(default)]
    pub(super) version: Option<String>,
    #[serde(default)]
    pub(super) package_type: Option<String>,
}

/// A package file, as `GET …/package_files` lists it and `PUT …?select=package_file`
/// answers.
#[derive(Debug, Deserialize)]
pub(super) struct PackageFileInfo {
    pub(super) id: u64,
    pub(super) file_name: String,
    #[serde(default)]
    pub(super) file_sha256: Option<String>,
}
