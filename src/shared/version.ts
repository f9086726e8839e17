// The package version, the single input for the default image tag. Kept in sync with package.json by a unit test.
export const VERSION = '0.1.0';
