// Moved to core/filter.ts (the floor, issue #11); this re-export goes once every importer uses the new path.
export * from '../../core/filter.ts';
