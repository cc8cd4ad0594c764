// Moved to core/selector.ts (the floor, issue #11); this re-export goes once every importer uses the new path.
export * from '../../core/selector.ts';
